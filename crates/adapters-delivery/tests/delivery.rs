//! The delivery adapters against real servers: an SMTP server inside the test, and Slack
//! and webhook receivers (the webhook's signature verified with the Standard Webhooks
//! library); refusals, 4xx, 5xx, timeouts and private addresses.

use std::time::Duration;

use adapters_delivery::{Deliveries, DeliveryConfig, SmtpConfig};
use chrono::Utc;
use domain::reports::ReportDelivery;
use domain::reports::delivery::ResolvedTarget;
use domain::reports::render::RenderedRun;
use secrecy::SecretString;
use serde_json::json;
use test_support::SmtpSink;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn rendered() -> RenderedRun {
    RenderedRun {
        subject: "Politeness: Weekly ▼".into(),
        html: "<html><body><h1>Weekly ▼</h1><p>60.00%</p></body></html>".into(),
        text: "Weekly\nPass rate: 60.00%\n".into(),
        slack: json!({"text": "Weekly", "blocks": []}),
        webhook: json!({"type": "evaluation_report.run", "run": {"id": "r1"}}),
    }
}

fn deliveries(smtp: Option<String>, allow_private: bool) -> Deliveries {
    Deliveries::new(DeliveryConfig {
        smtp: smtp.map(|url| SmtpConfig { url: SecretString::from(url), from: "reports@llma.example".into() }),
        allow_private,
    })
    .unwrap()
}

fn email(address: &str) -> ResolvedTarget {
    ResolvedTarget::Email { address: address.into() }
}

#[tokio::test]
async fn email_reaches_a_real_smtp_server_with_both_parts_and_refusals_are_final() {
    let sink = SmtpSink::start(&["gone@example.com"]).await;
    let sender = deliveries(Some(sink.url()), true);
    sender.send(&email("team@example.com"), &rendered(), "r1_0").await.unwrap();
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec!["team@example.com".to_owned()]);
    assert_eq!(mails[0].from, "reports@llma.example");
    assert!(mails[0].header("Subject").is_some());
    assert!(mails[0].part("text/html").unwrap().contains("<h1>Weekly ▼</h1>"));
    assert!(mails[0].part("text/plain").unwrap().contains("Pass rate: 60.00%"));

    let refused = sender.send(&email("gone@example.com"), &rendered(), "r1_0").await.unwrap_err();
    assert!(!refused.retryable, "{refused:?}");
    assert!(refused.cause.contains("550"), "{refused:?}");
    assert_eq!(sink.mails().len(), 1);
}

#[tokio::test]
async fn an_unreachable_smtp_server_is_retried_and_missing_settings_are_final() {
    let closed = test_support::free_port();
    let failure = deliveries(Some(format!("smtp://127.0.0.1:{closed}")), true)
        .send(&email("team@example.com"), &rendered(), "r1_0")
        .await
        .unwrap_err();
    assert!(failure.retryable, "{failure:?}");
    let failure = deliveries(None, true).send(&email("team@example.com"), &rendered(), "r1_0").await.unwrap_err();
    assert!(!failure.retryable);
    assert_eq!(failure.cause, "e-mail is not configured on this server (LLMA_SMTP_URL)");
}

fn slack(url: String) -> ResolvedTarget {
    ResolvedTarget::Slack { channel: "#evals".into(), webhook_url: Some(url) }
}

#[tokio::test]
async fn slack_gets_the_payload_4xx_is_final_and_5xx_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/ok"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/gone"))
        .respond_with(ResponseTemplate::new(404).set_body_string("no_service"))
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(path("/busy")).respond_with(ResponseTemplate::new(503)).mount(&server).await;
    let sender = deliveries(None, true);
    sender.send(&slack(format!("{}/ok", server.uri())), &rendered(), "r_1").await.unwrap();
    let sent: serde_json::Value = serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(sent["text"], "Weekly");

    let gone = sender.send(&slack(format!("{}/gone", server.uri())), &rendered(), "r_1").await.unwrap_err();
    assert_eq!((gone.retryable, gone.cause.as_str()), (false, "Slack answered HTTP 404: no_service"));
    let busy = sender.send(&slack(format!("{}/busy", server.uri())), &rendered(), "r_1").await.unwrap_err();
    assert!(busy.retryable);
    let integration = ResolvedTarget::Slack { channel: "#x".into(), webhook_url: None };
    assert!(!sender.send(&integration, &rendered(), "r_1").await.unwrap_err().retryable);
}

fn webhook(url: String) -> ResolvedTarget {
    ResolvedTarget::Webhook { url, secret: SecretString::from(SECRET) }
}

#[tokio::test]
async fn webhooks_are_signed_the_standard_webhooks_way() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/hook")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
    let sender = deliveries(None, true);
    sender.send(&webhook(format!("{}/hook", server.uri())), &rendered(), "run-1_2").await.unwrap();
    let request = &server.received_requests().await.unwrap()[0];
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(name, request.headers.get(name).unwrap().to_str().unwrap().parse().unwrap());
    }
    assert_eq!(headers["webhook-id"], "run-1_2");
    let timestamp: i64 = headers["webhook-timestamp"].to_str().unwrap().parse().unwrap();
    assert!((Utc::now().timestamp() - timestamp).abs() < 60);
    standardwebhooks::Webhook::new(SECRET).unwrap().verify(&request.body, &headers).expect("the signature verifies");
    let wrong = standardwebhooks::Webhook::new("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
    assert!(wrong.verify(&request.body, &headers).is_err());
}

#[tokio::test]
async fn webhook_failures_timeouts_and_redirects() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/down")).respond_with(ResponseTemplate::new(500)).mount(&server).await;
    Mock::given(method("POST")).and(path("/bad")).respond_with(ResponseTemplate::new(400)).mount(&server).await;
    Mock::given(method("POST"))
        .and(path("/moved"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "http://169.254.169.254/"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(12)))
        .mount(&server)
        .await;
    let sender = deliveries(None, true);
    let down = sender.send(&webhook(format!("{}/down", server.uri())), &rendered(), "r_0").await.unwrap_err();
    assert!(down.retryable && down.cause == "the endpoint answered HTTP 500", "{down:?}");
    let bad = sender.send(&webhook(format!("{}/bad", server.uri())), &rendered(), "r_0").await.unwrap_err();
    assert!(!bad.retryable);
    let moved = sender.send(&webhook(format!("{}/moved", server.uri())), &rendered(), "r_0").await.unwrap_err();
    assert!(moved.cause.contains("redirects are not followed"), "{moved:?}");
    let slow = sender.send(&webhook(format!("{}/slow", server.uri())), &rendered(), "r_0").await.unwrap_err();
    assert_eq!((slow.retryable, slow.cause.as_str()), (true, "timed out after 10 s"));
}

#[tokio::test]
async fn private_addresses_are_refused_where_the_connection_goes() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let guarded = deliveries(None, false);
    let port = server.address().port();
    // An address literal, and a name that resolves to loopback (what DNS rebinding does).
    for url in [format!("http://127.0.0.1:{port}/hook"), format!("http://localhost:{port}/hook")] {
        let failure = guarded.send(&webhook(url.clone()), &rendered(), "r_0").await.unwrap_err();
        assert!(failure.cause.contains("private"), "{url}: {failure:?}");
        let failure = guarded.send(&slack(url.clone()), &rendered(), "r_0").await.unwrap_err();
        assert!(failure.cause.contains("private"), "{url}: {failure:?}");
    }
    assert!(server.received_requests().await.unwrap().is_empty(), "nothing reached the private address");
}
